"""Read side for pages: list and detail queries. They run under the caller's RLS context."""
