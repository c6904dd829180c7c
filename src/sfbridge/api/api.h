/*
 * api: the management API of `sfbridge run --http ADDR` (or SFBRIDGE_HTTP):
 * a libmicrohttpd listener on its own thread, with its own Postgres
 * connection, serving
 *
 *   GET  /healthz                       the process is up
 *   GET  /readyz                        200 when healthy, 503 with the reasons
 *   GET  /metrics                       Prometheus text (metrics.c)
 *   GET  /api/v3/connections[/ID[/mappings|/errors|/export|/objects[/OBJ]|/activity]]
 *   POST /api/v3/connections/ID/actions/{pause,resume,import}, /ID/mappings (create)
 *   GET  /api/v3/mappings/OBJECT[/errors|/records[/ID]]; PATCH and DELETE it
 *   POST /api/v3/mappings/OBJECT/actions/{pause,resume,reload}
 *   POST /api/v3/errors/ID/actions/retry, /api/v3/notifications/ID/actions/acknowledge
 *   GET  / and /ui/NAME                 the dashboard (web.c)
 *   POST /api/v3/connections/ID/actions/authorize, GET /oauth/callback: the
 *        OAuth web flow from the dashboard ("Set up connection", oauthweb.c)
 *
 * modelled on Heroku Connect's API v3 (one connection, ID "default"); the
 * dashboard's calls are in dashapi.c. The routes are a table. It listens on
 * loopback unless told otherwise; beyond loopback SFBRIDGE_HTTP_TOKEN is
 * required, and when a token is set every route but /healthz wants
 * "Authorization: Bearer TOKEN" (or Basic with the token as password, which a
 * browser asks for). A state-changing call is one a browser cannot forge from
 * another site: JSON or a bearer token, and an Origin, if any, that is this
 * server's.
 */
#ifndef API_H
#define API_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

typedef struct api api;

/* Start listening on c->http_listen (the settings are copied). NULL with e
 * filled when the address is bad, taken, or beyond loopback without a token. */
api *api_start(const cfg *c, const char *config_path, int64_t started_ms, err_t *e);
/* Whether settings c would listen as s does (address and token): a reload
 * then keeps the listener and gives it the new settings (api_update). */
bool api_same_listener(const api *s, const cfg *c);
/* The new settings (copied) for the next requests; the connections close. */
void api_update(api *s, const cfg *c, const char *config_path);
/* The port it listens on (the one given, or the one picked for port 0). */
int api_port(const api *s);
void api_stop(api *s);

/* Whether an Authorization header carries token: "Bearer TOKEN", or "Basic"
 * with any user name and TOKEN as the password. Pure (for the fuzzer too). */
bool api_token_matches(const char *authorization, const char *token);

/* Whether host (a literal address or "localhost") is a loopback address. */
bool api_is_loopback(const char *host);

#endif
