/* TCP listener: hand-made socket (SO_REUSEPORT), then libuv for accepting.
 * Accept errors (EMFILE and friends) are logged and the listener keeps going;
 * a connection that fails during setup is dropped without bothering the
 * engine. */
#include "wd-listener.h"
#include "wd-conn-private.h"
#include "wd-log.h"
#include "wd-result.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wd_listener {
	uv_tcp_t tcp;
	struct wd_listener_settings set;
	wd_listener_accept_fn *accept;
	void *context;
	unsigned port;
	char name[80];
};

static void conn_ready(struct wd_conn *conn, void *context)
{
	struct wd_listener *listener = context;
	listener->accept(conn, listener->context);
}

static void connection_cb(uv_stream_t *server, int status)
{
	struct wd_listener *listener = server->data;
	if (status < 0) {
		wd_warning("listener", "%s: accept failed: %s", listener->name, uv_strerror(status));
		return;
	}
	const char *error;
	unsigned proxy_timeout = listener->set.proxy_timeout_ms == 0 ? 10000 :
								    listener->set.proxy_timeout_ms;
	struct wd_conn *conn = wd__conn_accept(server, &listener->set.limits, listener->set.tls,
					       listener->set.proxy, proxy_timeout, conn_ready,
					       listener, &error);
	if (conn == NULL)
		wd_debug("listener", "%s: connection dropped during setup: %s", listener->name, error);
}

static int open_socket(const char *host, unsigned port, char **error_r)
{
	struct addrinfo hints = { 0 };
	struct addrinfo *res = NULL;
	char service[16];
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai != 0) {
		if (asprintf(error_r, "cannot resolve listen address %s: %s", host,
			     gai_strerror(gai)) < 0)
			*error_r = NULL;
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (res->ai_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		if (asprintf(error_r, "cannot listen on %s port %u: %s", host, port,
			     strerror(errno)) < 0)
			*error_r = NULL;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

struct wd_listener *wd_listener_create(uv_loop_t *loop, const struct wd_listener_settings *set,
				       wd_listener_accept_fn *accept, void *context,
				       char **error_r)
{
	*error_r = NULL;
	const char *host = set->host != NULL ? set->host : "127.0.0.1";
	int fd = open_socket(host, set->port, error_r);
	if (fd < 0)
		return NULL;
	struct wd_listener *listener = calloc(1, sizeof(*listener));
	if (listener == NULL) {
		close(fd);
		*error_r = strdup("out of memory");
		return NULL;
	}
	listener->set = *set;
	listener->accept = accept;
	listener->context = context;
	uv_tcp_init(loop, &listener->tcp);
	listener->tcp.data = listener;
	int ret = uv_tcp_open(&listener->tcp, fd);
	if (ret == 0)
		ret = uv_listen((uv_stream_t *)&listener->tcp, set->backlog > 0 ? set->backlog : 511,
				connection_cb);
	if (ret < 0) {
		if (asprintf(error_r, "cannot listen on %s port %u: %s", host, set->port,
			     uv_strerror(ret)) < 0)
			*error_r = NULL;
		wd_listener_close(&listener);
		return NULL;
	}
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	uv_tcp_getsockname(&listener->tcp, (struct sockaddr *)&ss, &len);
	listener->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
							  ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(listener->name, sizeof(listener->name), "%s:%u%s%s", host, listener->port,
		 set->tls != NULL ? " tls" : "", set->proxy ? " proxy" : "");
	listener->set.host = NULL; /* not kept: the caller's string may go away */
	return listener;
}

unsigned wd_listener_port(const struct wd_listener *listener)
{
	return listener->port;
}

static void listener_close_cb(uv_handle_t *handle)
{
	free(handle->data);
}

void wd_listener_close(struct wd_listener **_listener)
{
	struct wd_listener *listener = *_listener;
	if (listener == NULL)
		return;
	*_listener = NULL;
	uv_close((uv_handle_t *)&listener->tcp, listener_close_cb);
}
