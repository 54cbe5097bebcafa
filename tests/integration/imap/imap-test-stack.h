#ifndef IMAP_TEST_STACK_H
#define IMAP_TEST_STACK_H

/* Shared by the IMAP integration tests: the stack fixture of
 * tests/integration (store, user, mailbox, messages) plus IMAP command
 * lines parsed by the real parser. */

#include "../stack-fixture.h"
#include "imap-parse-log.h"

#endif
