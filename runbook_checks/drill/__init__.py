"""The drill: one scenario run through its phases against a stack, and its verdict."""
