"""CayøLargo: Deribit futures and perpetual marketdata snapshots (10-minute, time-window paging)."""
