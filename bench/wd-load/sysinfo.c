/* sysinfo.c — what wd-load needs to know about the machine: the open-file
 * limit (raised as far as the hard limit allows), a server's memory from
 * /proc/PID/status (VmRSS, VmHWM), and the size of the ephemeral port range.
 *
 * Design: plain reads of /proc, each value -1 when unavailable, so the modes
 * can print "unknown" instead of failing on another kernel or in a sandbox. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "wd-load.h"

long wl_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max;
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : (long)rl.rlim_cur;
}

int wl_proc_memory(int pid, long *rss_kb_r, long *hwm_kb_r)
{
	char path[64], line[256];
	*rss_kb_r = -1;
	*hwm_kb_r = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			*rss_kb_r = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			*hwm_kb_r = strtol(line + 6, NULL, 10);
	}
	fclose(f);
	return *rss_kb_r >= 0 ? 0 : -1;
}

long wl_ephemeral_ports(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f == NULL)
		return -1;
	long lo, hi;
	int n = fscanf(f, "%ld %ld", &lo, &hi);
	fclose(f);
	return n == 2 && hi >= lo ? hi - lo + 1 : -1;
}
