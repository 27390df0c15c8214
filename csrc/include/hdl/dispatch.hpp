// Which instruction set the kernels run with (chosen once, at first use).
#pragma once

namespace hdl {
const char* isa_name();
}
