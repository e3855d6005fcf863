"""Who is calling: the directory of principals, the token endpoint's logic, token verification."""
