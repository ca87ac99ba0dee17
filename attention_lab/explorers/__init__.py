"""One module per chapter's explorer: a figure built once and an ``update`` that a panel drives.

Every explorer keeps the contract of :class:`attention_lab.panel.Explorer`.
"""
