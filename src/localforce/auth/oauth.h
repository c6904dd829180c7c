/*
 * oauth: the OAuth 2.0 endpoints: the token endpoint (password, refresh_token,
 * authorization_code, client_credentials), revoke, and the authorize page
 * that signs a user in and issues codes.
 */
#ifndef OAUTH_H
#define OAUTH_H

#include "login.h"

#endif
