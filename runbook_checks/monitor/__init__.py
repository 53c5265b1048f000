"""Monitoring as the on-call engineer sees it: alerts, probes, the status page, cadence."""
