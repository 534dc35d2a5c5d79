"""A panel's Plotly charts drawn as wide as the page says the panel is.

A ``FigureWidget`` drawn before the notebook places its view keeps Plotly's default width, 700 px,
about two-thirds of a notebook's output area. The page (``lnbReportWidth`` in ``static/common.js``)
reports the panel's width in pixels through the synced ``width`` trait whenever it changes (the
view attached, the output area resized); a panel with :class:`PanelWidth` among its bases draws each
new figure that wide (:meth:`PanelWidth.sized`) and relays out the charts it named
(:meth:`PanelWidth.fit`) when the width changes, without a redraw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import traitlets

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["PanelWidth"]


class PanelWidth(traitlets.HasTraits):
    """Mixin of a panel whose view shows Plotly charts: they take the panel's width in the page."""

    width = traitlets.Int(0).tag(sync=True)
    """The panel's width in the page in pixels, as the page reports it (0 before it has)."""

    def fit(self, *charts: go.FigureWidget) -> None:
        """Keep ``charts`` as wide as the panel from now on (called once, as the panel is built)."""
        self._fitted = charts
        self.observe(self._fit_charts, names=["width"])

    def sized(self, figure: go.Figure) -> go.Figure:
        """``figure`` as wide as the panel (Plotly's own default until the page reports a width)."""
        if self.width > 0:
            figure.update_layout(width=self.width)
        return figure

    def _fit_charts(self, _change: object = None) -> None:
        """The page reported a new width: the charts take it (a relayout, not a redraw)."""
        if self.width > 0:
            for chart in self._fitted:
                chart.layout.width = self.width
