"""LiveAll's API: the HTTP client (SendIM and the read endpoints), the token, and their answers read."""
