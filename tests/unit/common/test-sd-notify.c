/* wd_sd_notify against a real AF_UNIX datagram socket, by path and in the
 * abstract namespace; nothing is sent without NOTIFY_SOCKET, and a
 * malformed NOTIFY_SOCKET is an error, not a crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "wd-sd-notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int bind_datagram(const char *name, bool abstract)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	memcpy(addr.sun_path + (abstract ? 1 : 0), name, len);
	socklen_t addr_len =
		(socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (abstract ? 1 : 0));
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, addr_len), 0);
	return fd;
}

static void receive_equal(int fd, const char *expected)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, expected);
}

static void test_path_socket(void **state)
{
	(void)state;
	char path[108];
	snprintf(path, sizeof(path), "/tmp/wd-sd-notify-%d", (int)getpid());
	unlink(path);
	int fd = bind_datagram(path, false);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(wd_sd_notify("READY=1"), 1);
	receive_equal(fd, "READY=1");
	assert_int_equal(wd_sd_notify_reloading(), 1);
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	assert_true(strtoull(buf + 27, NULL, 10) > 0);
	close(fd);
	unlink(path);
	/* the manager went away: an error, not a crash */
	assert_int_equal(wd_sd_notify("STOPPING=1"), -1);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	(void)state;
	char name[64], env[66];
	snprintf(name, sizeof(name), "wd-sd-notify-abstract-%d", (int)getpid());
	int fd = bind_datagram(name, true);
	snprintf(env, sizeof(env), "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	assert_int_equal(wd_sd_notify("STATUS=serving 3 sessions"), 1);
	receive_equal(fd, "STATUS=serving 3 sessions");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_no_or_bad_socket(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(wd_sd_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(wd_sd_notify("READY=1"), -1);
	assert_int_equal(errno, EINVAL);
	char huge[300];
	memset(huge, 'x', sizeof(huge) - 1);
	huge[0] = '/';
	huge[sizeof(huge) - 1] = '\0';
	setenv("NOTIFY_SOCKET", huge, 1);
	assert_int_equal(wd_sd_notify("READY=1"), -1);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_socket),
		cmocka_unit_test(test_abstract_socket),
		cmocka_unit_test(test_no_or_bad_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
