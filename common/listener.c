/* TCP listener: hand-made socket (SO_REUSEPORT), then libuv for accepting.
 * Accept errors (EMFILE and friends) are logged and the listener keeps going;
 * a connection that fails during setup is dropped without bothering the
 * engine.
 *
 * Per-address limit: the count of open connections per peer address lives
 * in a small locked hash table shared by the service's listeners on all
 * loops. A connection is counted when it is ready (the PROXY header, when
 * one is expected, names the real address) and uncounted by the
 * connection's release hook when it is gone; one over the limit gets the
 * protocol's refusal line and is closed without reaching the engine.
 * Loopback peers are not counted (a webmail on the same host). */
#include "wd-listener.h"
#include "wd-conn-private.h"
#include "wd-log.h"
#include "wd-result.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* ---- per-address limit ---- */

#define IP_BUCKETS 256

struct ip_count {
	struct ip_count *next;
	unsigned count;
	char ip[INET6_ADDRSTRLEN + 2];
};

struct wd_listener_ip_limit {
	atomic_int refcount;
	unsigned max;
	char *refusal;
	pthread_mutex_t lock;
	struct ip_count *buckets[IP_BUCKETS];
};

struct wd_listener_ip_limit *wd_listener_ip_limit_create(unsigned max, const char *refusal)
{
	struct wd_listener_ip_limit *limit = calloc(1, sizeof(*limit));
	if (limit == NULL)
		return NULL;
	limit->refusal = strdup(refusal);
	if (limit->refusal == NULL) {
		free(limit);
		return NULL;
	}
	atomic_init(&limit->refcount, 1);
	limit->max = max;
	pthread_mutex_init(&limit->lock, NULL);
	return limit;
}

void wd_listener_ip_limit_ref(struct wd_listener_ip_limit *limit)
{
	atomic_fetch_add(&limit->refcount, 1);
}

int wd_listener_ip_limit_share(struct wd_listener_ip_limit *shared, unsigned max,
			       const char *refusal, struct wd_listener_ip_limit **limit_r)
{
	*limit_r = NULL;
	if (shared != NULL) {
		wd_listener_ip_limit_ref(shared);
		*limit_r = shared;
	} else if (max > 0) {
		*limit_r = wd_listener_ip_limit_create(max, refusal);
		if (*limit_r == NULL)
			return WD_ERROR;
	}
	return WD_OK;
}

void wd_listener_ip_limit_unref(struct wd_listener_ip_limit **_limit)
{
	struct wd_listener_ip_limit *limit = *_limit;
	*_limit = NULL;
	if (limit == NULL || atomic_fetch_sub(&limit->refcount, 1) > 1)
		return;
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		while (limit->buckets[i] != NULL) {
			struct ip_count *c = limit->buckets[i];
			limit->buckets[i] = c->next;
			free(c);
		}
	}
	pthread_mutex_destroy(&limit->lock);
	free(limit->refusal);
	free(limit);
}

static struct ip_count **ip_slot(struct wd_listener_ip_limit *limit, const char *ip)
{
	unsigned hash = 5381;
	for (const char *p = ip; *p != '\0'; p++)
		hash = hash * 33 + (unsigned char)*p;
	struct ip_count **slot = &limit->buckets[hash % IP_BUCKETS];
	while (*slot != NULL && strcmp((*slot)->ip, ip) != 0)
		slot = &(*slot)->next;
	return slot;
}

unsigned wd_listener_ip_limit_count(struct wd_listener_ip_limit *limit, const char *ip)
{
	pthread_mutex_lock(&limit->lock);
	struct ip_count *c = *ip_slot(limit, ip);
	unsigned count = c != NULL ? c->count : 0;
	pthread_mutex_unlock(&limit->lock);
	return count;
}

/* Counts the connection; false when the address is at its limit (or its
   entry cannot be allocated: then the process is out of memory anyway). */
static bool ip_take(struct wd_listener_ip_limit *limit, const char *ip)
{
	pthread_mutex_lock(&limit->lock);
	struct ip_count **slot = ip_slot(limit, ip);
	if (*slot == NULL) {
		*slot = calloc(1, sizeof(**slot));
		if (*slot != NULL)
			snprintf((*slot)->ip, sizeof((*slot)->ip), "%s", ip);
	}
	bool allowed = *slot != NULL && (*slot)->count < limit->max;
	if (allowed)
		(*slot)->count++;
	pthread_mutex_unlock(&limit->lock);
	return allowed;
}

static void ip_release(struct wd_conn *conn, void *context)
{
	struct wd_listener_ip_limit *limit = context;
	pthread_mutex_lock(&limit->lock);
	struct ip_count **slot = ip_slot(limit, wd_conn_peer_ip(conn));
	struct ip_count *c = *slot;
	if (c != NULL && --c->count == 0) {
		*slot = c->next;
		free(c);
	}
	pthread_mutex_unlock(&limit->lock);
	wd_listener_ip_limit_unref(&limit);
}

/* 127.0.0.0/8, ::1 and ::ffff:127.x: a webmail or proxy on the same host
   carries many users' connections from one loopback address */
static bool peer_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static void conn_ready(struct wd_conn *conn, void *context)
{
	struct wd_listener *listener = context;
	struct wd_listener_ip_limit *limit = listener->set.ip_limit;
	if (limit != NULL && !peer_is_loopback(wd_conn_peer(conn))) {
		const char *ip = wd_conn_peer_ip(conn);
		if (!ip_take(limit, ip)) {
			wd_info("listener", "%s: refused %s: %u connections from that address",
				listener->name, ip, limit->max);
			wd_conn_write_str(conn, limit->refusal);
			wd_conn_close(conn, "too many connections from the address");
			return;
		}
		wd_listener_ip_limit_ref(limit);
		wd__conn_set_release(conn, ip_release, limit);
	}
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
	if (set->ip_limit != NULL)
		wd_listener_ip_limit_ref(set->ip_limit);
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
	struct wd_listener *listener = handle->data;
	wd_listener_ip_limit_unref(&listener->set.ip_limit);
	free(listener);
}

void wd_listener_close(struct wd_listener **_listener)
{
	struct wd_listener *listener = *_listener;
	if (listener == NULL)
		return;
	*_listener = NULL;
	uv_close((uv_handle_t *)&listener->tcp, listener_close_cb);
}
