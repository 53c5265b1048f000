"""Evidence of drills and game days: the journal, reports (HTML, Markdown, JUnit), inline
SVG charts, manifests, the quarterly review, and game-day mode.

Heavy parts are imported by their users: `bundle.write_bundle` writes one bundle,
`review.review` aggregates many, `gameday.run_gameday` runs a game day.
"""
