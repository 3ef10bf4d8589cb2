#include "boreas/io/netcdf.hpp"

#include <netcdf.h>

#include "boreas/core/error.hpp"

namespace boreas::io {

void NetcdfFile::check(int status, const std::string& what) const {
    BOREAS_CHECK(status == NC_NOERR, "NetCDF file '{}': {}: {}", path_, what, nc_strerror(status));
}

NetcdfFile::NetcdfFile(const std::filesystem::path& path) : path_(path.string()) {
    check(nc_create(path_.c_str(), NC_CLOBBER | NC_NETCDF4, &id_), "cannot create");
}

NetcdfFile::~NetcdfFile() {
    if (id_ >= 0) nc_close(id_);
}

int NetcdfFile::define_dimension(const std::string& name, std::size_t length) {
    int dim = -1;
    check(nc_def_dim(id_, name.c_str(), length == 0 ? NC_UNLIMITED : length, &dim),
          "dimension " + name);
    return dim;
}

int NetcdfFile::define_variable(const std::string& name, int type, const std::vector<int>& dims) {
    int var = -1;
    check(nc_def_var(id_, name.c_str(), type, static_cast<int>(dims.size()), dims.data(), &var),
          "variable " + name);
    return var;
}

void NetcdfFile::set_chunking(int variable, const std::vector<std::size_t>& chunks) {
    check(nc_def_var_chunking(id_, variable, NC_CHUNKED, chunks.data()), "chunking");
}

void NetcdfFile::set_chunk_cache(int variable, std::size_t bytes) {
    check(nc_set_var_chunk_cache(id_, variable, bytes, bytes ? 521 : 1, 0.75f), "chunk cache");
}

void NetcdfFile::set_fill(int variable, float fill) {
    check(nc_def_var_fill(id_, variable, NC_FILL, &fill), "fill value");
}

void NetcdfFile::attribute(int variable, const std::string& name, const std::string& value) {
    check(nc_put_att_text(id_, variable == global ? NC_GLOBAL : variable, name.c_str(),
                          value.size(), value.c_str()),
          "attribute " + name);
}

void NetcdfFile::attribute(int variable, const std::string& name, float value) {
    check(nc_put_att_float(id_, variable == global ? NC_GLOBAL : variable, name.c_str(), NC_FLOAT,
                           1, &value),
          "attribute " + name);
}

void NetcdfFile::end_definitions() {
    check(nc_enddef(id_), "end of definitions");
}

void NetcdfFile::put(int variable, const std::vector<std::size_t>& start,
                     const std::vector<std::size_t>& count, const float* values) {
    check(nc_put_vara_float(id_, variable, start.data(), count.data(), values), "write");
}

void NetcdfFile::put(int variable, const std::vector<std::size_t>& start,
                     const std::vector<std::size_t>& count, const std::int64_t* values) {
    static_assert(sizeof(long long) == sizeof(std::int64_t));
    check(nc_put_vara_longlong(id_, variable, start.data(), count.data(),
                               reinterpret_cast<const long long*>(values)),
          "write");
}

void NetcdfFile::sync() {
    check(nc_sync(id_), "sync");
}

void NetcdfFile::close() {
    if (id_ < 0) return;
    const int status = nc_close(id_);
    id_ = -1;
    check(status, "close");
}

}  // namespace boreas::io
