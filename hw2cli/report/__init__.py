"""`hw2 report`: one Markdown report from the part folders of `hw2 reproduce`."""
