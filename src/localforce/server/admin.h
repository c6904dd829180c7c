/*
 * admin: changing the org while it runs, for tests and demos. Outside
 * /services, unauthenticated unless --admin-token is set, and, like the rest
 * of localforce, bound to loopback unless told otherwise.
 *
 *   GET  /admin/health                       {"status":"ok", counts per object}
 *   POST /admin/objects                      {"name":"X__c", ...definition}  -> 201
 *   POST /admin/objects/{Object}/fields      {"name":"F__c","type":...}      -> 201
 *   POST /admin/objects/{Object}/records     [ {...}, ... ]                  -> {"loaded":N}
 *   POST /admin/sessions/expire              every session expires now      -> 204
 */
#ifndef ADMIN_H
#define ADMIN_H

#include "http.h"

void admin_health(http_req *req, http_resp *resp);
void admin_add_object(http_req *req, http_resp *resp);
void admin_add_field(http_req *req, http_resp *resp);
void admin_load_records(http_req *req, http_resp *resp);
/* POST /admin/objects/{Obj}/undelete {"ids": [...]}: restore records from the
 * recycle bin (as a user does in Salesforce's UI); per id
 * {"id","success","errors":[{"statusCode","message"}]}, like SOAP undelete(). */
void admin_undelete(http_req *req, http_resp *resp);
void admin_expire_sessions(http_req *req, http_resp *resp);

#endif
