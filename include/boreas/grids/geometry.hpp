#pragma once
/// Points on the unit sphere. Spatial search runs on Cartesian xyz, where the chord distance
/// orders pairs exactly as the great-circle distance does.

#include <cmath>

namespace boreas::grids {

struct Vec3 {
    double x = 0, y = 0, z = 0;
};

inline Vec3 operator+(Vec3 a, Vec3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline Vec3 operator-(Vec3 a, Vec3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
inline Vec3 operator*(double s, Vec3 a) { return {s * a.x, s * a.y, s * a.z}; }
inline double dot(Vec3 a, Vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline Vec3 cross(Vec3 a, Vec3 b) {
    return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double norm(Vec3 a) { return std::sqrt(dot(a, a)); }
inline Vec3 normalized(Vec3 a) { return (1.0 / norm(a)) * a; }

/// (lat, lon) in radians to a unit vector; lon 0 on +x, north pole on +z.
inline Vec3 to_xyz(double lat, double lon) {
    return {std::cos(lat) * std::cos(lon), std::cos(lat) * std::sin(lon), std::sin(lat)};
}

/// Great-circle angle (radians) by the haversine formula, as anemoi-graphs computes it.
inline double haversine(double lat1, double lon1, double lat2, double lon2) {
    const double s_lat = std::sin(0.5 * (lat2 - lat1));
    const double s_lon = std::sin(0.5 * (lon2 - lon1));
    const double a = s_lat * s_lat + std::cos(lat1) * std::cos(lat2) * s_lon * s_lon;
    return 2.0 * std::atan2(std::sqrt(a), std::sqrt(1.0 - a));
}

inline double chord_from_arc(double arc) { return 2.0 * std::sin(0.5 * arc); }
inline double arc_from_chord(double chord) { return 2.0 * std::asin(0.5 * chord); }

}  // namespace boreas::grids
