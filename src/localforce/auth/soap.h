/*
 * soap: the SOAP login and logout jsforce falls back to: envelope parsing with
 * libxml2 (no DTDs, size limits) and Salesforce's loginResponse and faults.
 */
#ifndef SOAP_H
#define SOAP_H

#include "login.h"

#endif
