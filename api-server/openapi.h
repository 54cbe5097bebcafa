#ifndef API_OPENAPI_H
#define API_OPENAPI_H

/* The OpenAPI 3.0 document of every route (openapi.c), made from the route
 * tables and their field lists, so it says exactly what the server checks.
 * docs/api.md is rendered from it (tools/api-doc.py). */

#include "api.h"

json_t *api_openapi_document(void);

#endif
