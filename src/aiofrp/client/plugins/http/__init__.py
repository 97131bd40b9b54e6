"""HTTP serving for the HTTP client plugins (``static_file``, ``http2http``, ``http2https``,
``https2http``, ``https2https``), on aiohttp.

The plugin modules one level up are thin and registered by type; they import this package only
when a proxy with such a plugin starts, so an frpc without HTTP plugins never loads aiohttp.

- :mod:`.serve`: a work connection becomes one server connection: aiohttp's HTTP/1.1 protocol
  attached straight to the work connection's transport (no loopback hop), behind TLS for the
  ``https2*`` plugins, or :mod:`.h2` when the browser chose HTTP/2 by ALPN.
- :mod:`.static`: Go's ``http.FileServer`` behind ``static_file``.
- :mod:`.reverse`: Go's ``httputil.ReverseProxy`` behind the four proxy plugins.
"""
