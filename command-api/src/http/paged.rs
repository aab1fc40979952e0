//! One tenant-scoped page query for every list route: the tenant condition is always there
//! (it cannot be forgotten), each optional filter is written once, and the same conditions
//! and binds serve both the page of rows and the total, and the per-tenant caps on writes.

use crate::error::ApiError;
use axum::http::StatusCode;
use sqlx::postgres::{PgRow, Postgres};
use sqlx::{FromRow, PgPool, QueryBuilder};
use uuid::Uuid;

/// Validates paging parameters: limit 1 to 500 (default 50), offset not negative.
pub fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    if offset < 0 {
        return Err(ApiError::validation(
            "offset",
            "offset must not be negative",
        ));
    }
    Ok((limit, offset))
}

/// A value one condition binds.
#[derive(Debug, Clone)]
enum Value {
    Uuid(Uuid),
    Text(String),
    Bool(bool),
}

/// The rows of one tenant in `from` (a table, or tables joined, with their aliases).
#[derive(Debug, Clone)]
pub struct TenantQuery {
    from: &'static str,
    tenant_column: &'static str,
    tenant: Uuid,
    /// `column = value` conditions, and fixed SQL conditions (no value).
    equal: Vec<(&'static str, Value)>,
    fixed: Vec<&'static str>,
}

impl TenantQuery {
    /// `tenant_column` names the tenant id in `from` (`tenant_id`, or `a.tenant_id`).
    pub fn new(from: &'static str, tenant_column: &'static str, tenant: Uuid) -> Self {
        Self {
            from,
            tenant_column,
            tenant,
            equal: Vec::new(),
            fixed: Vec::new(),
        }
    }

    /// Only rows whose `column` equals `value`, when one is given.
    pub fn eq_text(mut self, column: &'static str, value: Option<&str>) -> Self {
        if let Some(v) = value {
            self.equal.push((column, Value::Text(v.to_string())));
        }
        self
    }

    /// Only rows whose `column` equals `value`, when one is given.
    pub fn eq_uuid(mut self, column: &'static str, value: Option<Uuid>) -> Self {
        if let Some(v) = value {
            self.equal.push((column, Value::Uuid(v)));
        }
        self
    }

    /// Only rows whose `column` equals `value`, when one is given.
    pub fn eq_bool(mut self, column: &'static str, value: Option<bool>) -> Self {
        if let Some(v) = value {
            self.equal.push((column, Value::Bool(v)));
        }
        self
    }

    /// A condition written in SQL, without values (`NOT deleted`), when `applies`.
    pub fn when(mut self, applies: bool, condition: &'static str) -> Self {
        if applies {
            self.fixed.push(condition);
        }
        self
    }

    fn push_where(&self, q: &mut QueryBuilder<'_, Postgres>) {
        q.push(" WHERE ")
            .push(self.tenant_column)
            .push(" = ")
            .push_bind(self.tenant);
        for (column, value) in &self.equal {
            q.push(" AND ").push(*column).push(" = ");
            match value {
                Value::Uuid(v) => q.push_bind(*v),
                Value::Text(v) => q.push_bind(v.clone()),
                Value::Bool(v) => q.push_bind(*v),
            };
        }
        for condition in &self.fixed {
            q.push(" AND (").push(*condition).push(")");
        }
    }

    /// How many rows match.
    pub async fn count(&self, pool: &PgPool) -> Result<i64, sqlx::Error> {
        let mut count = QueryBuilder::new(format!("SELECT count(*) FROM {}", self.from));
        self.push_where(&mut count);
        let (total,): (i64,) = count.build_query_as().fetch_one(pool).await?;
        Ok(total)
    }

    /// Refuses adding one more row once `max` match (409 `limit_reached`): a tenant's cost
    /// bounded at write. `what` names the rows in the message ("rules").
    pub async fn at_most(&self, pool: &PgPool, max: i64, what: &str) -> Result<(), ApiError> {
        if self.count(pool).await? >= max {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "limit_reached",
                format!("a tenant holds at most {max} {what}; delete one first"),
            )
            .with("limit", max));
        }
        Ok(())
    }

    /// One page of `columns`, ordered by `order`, and how many rows match in all.
    pub async fn page<T>(
        &self,
        pool: &PgPool,
        columns: &str,
        order: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<T>, i64), sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let mut rows = QueryBuilder::new(format!("SELECT {columns} FROM {}", self.from));
        self.push_where(&mut rows);
        rows.push(" ORDER BY ")
            .push(order)
            .push(" LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let data = rows.build_query_as::<T>().fetch_all(pool).await?;
        Ok((data, self.count(pool).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(q: &TenantQuery) -> String {
        let mut b = QueryBuilder::new("SELECT * FROM t");
        q.push_where(&mut b);
        b.sql().to_string()
    }

    #[test]
    fn the_tenant_is_always_bound_and_absent_filters_add_nothing() {
        let tenant = Uuid::from_u128(1);
        let q = TenantQuery::new("agents a", "a.tenant_id", tenant)
            .eq_text("a.status", None)
            .eq_uuid("a.rule_id", None)
            .when(false, "NOT deleted");
        assert_eq!(sql(&q), "SELECT * FROM t WHERE a.tenant_id = $1");
        let q = q
            .eq_text("a.status", Some("active"))
            .eq_uuid("a.rule_id", Some(tenant))
            .when(true, "NOT deleted");
        assert_eq!(
            sql(&q),
            "SELECT * FROM t WHERE a.tenant_id = $1 AND a.status = $2 AND a.rule_id = $3 AND (NOT deleted)"
        );
    }
}
