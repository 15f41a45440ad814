"""The headless sync core of the client: model, long-poll, outbox, drafts (no Textual).

:class:`tui.core.sync.SyncCore` owns the client's state and network loops and
publishes typed events (:mod:`tui.core.events`); the Textual screens render them.
See docs/architecture.md.
"""
