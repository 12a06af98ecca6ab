"""The client side of a remote alphatrace server: the CLI's `--url` and `connect("http://...")`.

`wire` is the encoding both sides share (tagged JSON, Arrow IPC, typed errors), `files` maps a
caller's file arguments to the names they get on the server, `http` sends a request and turns
transport and auth failures into clear errors, `database` is the remote `Database`.
"""
