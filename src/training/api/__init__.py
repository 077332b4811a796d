"""The HTTP edge: the Litestar app, controllers per context, authentication and errors."""
