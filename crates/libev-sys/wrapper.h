/* The header bindgen reads: libev's public API plus the shim's helpers. */
#include "ev.h"
#include "shim/ev_shim.h"
