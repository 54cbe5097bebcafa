/* wdctl 2fa totp setup | enable | disable — TOTP enrolment for a user. */
#include "wdctl.h"
#include "wd-auth-totp.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct wd_auth_meta cli_meta = { .protocol = "CLI" };

static int report(const char *what, char *error)
{
	wdctl_fail("2fa totp %s: %s", what, error != NULL ? error : "failed");
	free(error);
	return WDCTL_EXIT_FAIL;
}

int wdctl_totp_setup(struct wdctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return wdctl_fail("usage: wdctl 2fa totp setup <user> [--issuer I] [--label L]");
	const char *issuer = NULL, *label = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--issuer") == 0 && i + 1 < argc)
			issuer = argv[++i];
		else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
			label = argv[++i];
		else
			return wdctl_fail("2fa totp setup: unknown option %s", argv[i]);
	}
	bson_oid_t user;
	if (wdctl_find_user(ctl, argv[0], &user) < 0)
		return WDCTL_EXIT_FAIL;
	struct wd_auth_totp_setup setup;
	char *error = NULL;
	if (wd_auth_totp_setup(ctl->auth, &user, label, issuer, &setup, &error) < 0)
		return report("setup", error);
	/* seed, then the otpauth URL for a QR code; confirm with "enable" */
	printf("%s\n%s\n", setup.seed, setup.url);
	OPENSSL_cleanse(setup.seed, sizeof(setup.seed));
	free(setup.url);
	return WDCTL_EXIT_OK;
}

int wdctl_totp_enable(struct wdctl *ctl, int argc, char **argv)
{
	if (argc != 2)
		return wdctl_fail("usage: wdctl 2fa totp enable <user> <code>");
	bson_oid_t user;
	if (wdctl_find_user(ctl, argv[0], &user) < 0)
		return WDCTL_EXIT_FAIL;
	bool enabled = false;
	char *error = NULL;
	if (wd_auth_totp_enable(ctl->auth, &user, argv[1], &cli_meta, &enabled, &error) < 0)
		return report("enable", error);
	if (!enabled)
		return wdctl_fail("2fa totp enable: invalid code");
	return WDCTL_EXIT_OK;
}

int wdctl_totp_disable(struct wdctl *ctl, int argc, char **argv)
{
	if (argc != 1)
		return wdctl_fail("usage: wdctl 2fa totp disable <user>");
	bson_oid_t user;
	if (wdctl_find_user(ctl, argv[0], &user) < 0)
		return WDCTL_EXIT_FAIL;
	char *error = NULL;
	if (wd_auth_totp_disable(ctl->auth, &user, &cli_meta, &error) < 0)
		return report("disable", error);
	return WDCTL_EXIT_OK;
}
