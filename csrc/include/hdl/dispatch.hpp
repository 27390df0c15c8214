// Which instruction set the kernels run with (chosen once, at first use).
#pragma once

namespace hdl {
const char* isa_name();
// Measured float32 FMA throughput of all threads, in GFLOP/s, over about `seconds`.
double fma_peak_gflops(double seconds);
}
