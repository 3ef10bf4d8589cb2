#pragma once
/// A thin RAII layer over the netCDF-C library (Debian's libnetcdf): every call checked, errors
/// naming the file, the variable and netCDF's message.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace boreas::io {

class NetcdfFile {
  public:
    /// Creates (clobbers) a NETCDF4 file.
    explicit NetcdfFile(const std::filesystem::path& path);
    ~NetcdfFile();
    NetcdfFile(const NetcdfFile&) = delete;
    NetcdfFile& operator=(const NetcdfFile&) = delete;

    int define_dimension(const std::string& name, std::size_t length);  ///< 0: unlimited
    /// `type` is a netCDF type (NC_FLOAT, NC_INT64, ...); dims by id, outermost first.
    int define_variable(const std::string& name, int type, const std::vector<int>& dims);
    void set_chunking(int variable, const std::vector<std::size_t>& chunks);
    void set_fill(int variable, float fill);
    /// HDF5's chunk cache of one variable (netCDF's default: 16 MiB each). 0 writes whole
    /// chunks straight to the file instead of holding them until they are evicted or closed.
    void set_chunk_cache(int variable, std::size_t bytes);
    void attribute(int variable, const std::string& name, const std::string& value);
    void attribute(int variable, const std::string& name, float value);
    void end_definitions();
    void put(int variable, const std::vector<std::size_t>& start,
             const std::vector<std::size_t>& count, const float* values);
    void put(int variable, const std::vector<std::size_t>& start,
             const std::vector<std::size_t>& count, const std::int64_t* values);
    void sync();
    void close();
    static constexpr int global = -1;  ///< NC_GLOBAL

  private:
    void check(int status, const std::string& what) const;
    std::string path_;
    int id_ = -1;
};

}  // namespace boreas::io
