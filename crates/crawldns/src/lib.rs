//! crawldns resolver
