#ifndef REST_H
#define REST_H
#endif
