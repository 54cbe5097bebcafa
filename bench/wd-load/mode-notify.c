#include "wd-load.h"
int wl_mode_notify(void) { return 2; }
