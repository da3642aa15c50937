"""lmplay's terminal app (Textual). It talks to lmcore only through lmcore's public API."""
