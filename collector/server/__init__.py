"""A private Redis for ``collector serve`` and the demo: which redis-server binary to run
(``binary``), running one (``process``), and holding a server name with its connection file
(``claim``)."""
