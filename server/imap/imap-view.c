/* imap-view.c: placeholder registered in meson so that parallel work on the IMAP
 * engine does not collide in meson.build; filled in by the wd-server IMAP issue. */
