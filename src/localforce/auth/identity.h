/*
 * identity: the identity URL (/id/{org}/{user}) and /services/oauth2/userinfo: the
 * caller's user, org and URLs as Salesforce describes them.
 */
#ifndef IDENTITY_H
#define IDENTITY_H

#include "login.h"

#endif
