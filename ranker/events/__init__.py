"""Shopper events: what shoppers do (searches, impressions, clicks, carts, purchases),
validated, stored durably and exactly once, for profiles and for training."""
