// One SIMD target's kernel table: compiled once per target with that target's flags by
// sparq_add_dispatch() (cmake/SparqDispatch.cmake), registered at static initialisation.
#include "sparq/kernels/dispatch_target.hpp"
