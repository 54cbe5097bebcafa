#include "wd-load.h"
int wl_mode_idle(void) { return 2; }
