// libFuzzer target: a torch zip checkpoint from arbitrary bytes through the whole native reader
// (zip, inert pickle, anemoi metadata, the module walk, every tensor's storage). Anything but a
// boreas::Error is a bug. Built as a fuzzer with the `fuzz` preset (clang, ASan/UBSan); the
// regular build links it with replay_main.cpp and ctest replays the committed corpus.
#include <cstddef>
#include <cstdint>
#include <span>

#include "boreas/core/error.hpp"
#include "boreas/io/torch_checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        boreas::io::TorchCheckpoint checkpoint(
            std::span(reinterpret_cast<const std::byte*>(data), size), "fuzz.ckpt");
        (void)checkpoint.anemoi_metadata();
        for (const auto& entry : checkpoint.state_dict(checkpoint.root())) {
            if (boreas::io::numel(*entry.tensor) > (1 << 20)) continue;  // bound memory, not a bug
            (void)checkpoint.read<float>(*entry.tensor, entry.name);
        }
    } catch (const boreas::Error&) {
        // malformed input: refused with a message, as it should be
    }
    return 0;
}
