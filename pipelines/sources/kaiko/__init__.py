"""Kaiko: derivatives.v2/price (mark, index, last) by instrument, cursor-paged JSON."""
