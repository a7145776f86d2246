"""Server-rendered pages (plain HTML forms, no JavaScript needed): sign-in and the print-shop portal."""
