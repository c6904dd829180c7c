#ifndef ADMIN_H
#define ADMIN_H
#endif
