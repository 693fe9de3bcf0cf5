/* serve_http.h — starts the libmicrohttpd daemon of `smallcoder serve` (serve_http.c). */
#ifndef SC_INFER_SERVE_HTTP_H
#define SC_INFER_SERVE_HTTP_H

#include <sys/socket.h>

#include "infer/serve.h"

struct MHD_Daemon;
/* Listens on addr (its port is *port; 0 = any free one, written back). NULL on failure (sc_error set). */
struct MHD_Daemon *serve_http_start(serve_state *st, const struct sockaddr *addr, int *port);

void serve_http_stop(struct MHD_Daemon *d);

#endif
