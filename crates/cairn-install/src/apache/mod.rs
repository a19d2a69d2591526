//! Apache httpd: the configuration language, virtual host choice and edits.
