"""Drop the reply-feedback table: nothing ever wrote to it, and an export should not promise it."""

SQL = """
DROP TABLE IF EXISTS feedback;
"""
