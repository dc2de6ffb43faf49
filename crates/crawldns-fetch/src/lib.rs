//! HTTP fetching for crawlers on top of the crawldns resolver (not built yet).
