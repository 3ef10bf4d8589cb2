#pragma once
// A failed GPU runtime call as boreas::Error, naming the call and the runtime's message (host
// code only: error.hpp needs C++20, device sources are C++17).
#include "boreas/core/error.hpp"
#include "gpu_runtime.hpp"

/// Throws boreas::Error naming the runtime call and its message where it failed.
#define BOREAS_GPU_CHECK(call)                                                       \
    do {                                                                             \
        const ::boreas::gpu::Status boreas_gpu_status_ = (call);                     \
        BOREAS_CHECK(boreas_gpu_status_ == ::boreas::gpu::kSuccess, "{}: {}", #call, \
                     ::boreas::gpu::error_text(boreas_gpu_status_));                 \
    } while (0)
