//! SQL over decoded batches: compiles `transform.sql` and partition rules with DataFusion into
//! physical expressions, once per input schema, and evaluates them batch by batch.
//!
//! ```text
//!   SQL text ──► DataFusion planner (table `records` = the batch schema) ──► LogicalPlan
//!                                                                           │ Projection [Filter] TableScan
//!                                      type coercion ──► PhysicalExpr per output column / predicate
//!   RecordBatch ──► PhysicalExpr::evaluate ──► arrays   (no per-record interpretation)
//! ```
//!
//! Owns the [`SqlCompiler`] (a DataFusion session with identifiers kept case-sensitive, so
//! `userId` means the JSON field `userId`, and the [`wallclock`] function), [`NamedExpr`], and
//! [`evaluate_tolerant`], which turns a failing batch evaluation into per-row failures so one bad
//! record follows `errors.tolerance` instead of failing its batch. [`transform`] applies
//! `transform.sql`.

pub mod transform;

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::empty::EmptyTable;
use datafusion::execution::context::{SessionConfig, SessionContext, SessionState};
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast::{
    visit_expressions, Expr as SqlExpr, FunctionArguments, ObjectName,
};

use crate::Origin;

/// The table name SQL refers to: one decoded batch.
pub const TABLE: &str = "records";

/// An expression that cannot be compiled or evaluated. Compilation errors are the user's (the
/// SQL is theirs); the message is DataFusion's.
#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    #[error("config key '{key}': {message}")]
    Compile { key: String, message: String },
    #[error("config key '{key}': evaluating the expression failed: {message}")]
    Evaluate { key: String, message: String },
}

impl ExprError {
    pub fn origin(&self) -> Origin {
        Origin::User
    }

    fn compile(key: &str, message: impl ToString) -> Self {
        ExprError::Compile {
            key: key.to_string(),
            message: message.to_string(),
        }
    }
}

/// A compiled expression with the column name it produces.
#[derive(Debug, Clone)]
pub struct NamedExpr {
    pub name: String,
    /// Whether the SQL named it (`expr AS name` or a bare column), rather than DataFusion.
    pub named_by_user: bool,
    pub expr: Arc<dyn PhysicalExpr>,
    pub data_type: DataType,
    pub nullable: bool,
}

/// The parts of `SELECT <list> FROM records [WHERE <predicate>]`, compiled.
#[derive(Debug, Clone)]
pub struct CompiledSelect {
    pub projection: Vec<NamedExpr>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// The schema of the projection's output.
    pub schema: SchemaRef,
}

/// Plans SQL against the schema of a batch. Cheap to create; compile once per schema.
pub struct SqlCompiler {
    ctx: SessionContext,
}

fn new_context() -> SessionContext {
    let mut config = SessionConfig::new();
    // JSON field names are case-sensitive; `userId` must not become `userid`.
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    ctx.register_udf(ScalarUDF::from(Wallclock::default()));
    ctx
}

impl Default for SqlCompiler {
    fn default() -> Self {
        Self::new()
    }
}

impl SqlCompiler {
    pub fn new() -> Self {
        SqlCompiler { ctx: new_context() }
    }

    /// Compiles a whole `SELECT ... FROM records [WHERE ...]` statement for batches of `schema`.
    /// `key` names the config key in errors.
    pub fn compile_select(
        &self,
        key: &str,
        sql: &str,
        schema: &SchemaRef,
    ) -> Result<CompiledSelect, ExprError> {
        let plan = self.plan(key, sql, schema)?;
        let LogicalPlan::Projection(projection) = &plan else {
            return Err(ExprError::compile(
                key,
                format!("expected `SELECT ... FROM {TABLE} [WHERE ...]`, got a {} plan (aggregates, joins, ORDER BY, LIMIT and DISTINCT are not per-record)", plan.display()),
            ));
        };
        let mut input = projection.input.as_ref();
        let mut filter = None;
        if let LogicalPlan::Filter(f) = input {
            filter = Some(self.physical(key, f.predicate.clone(), f.input.schema())?);
            input = f.input.as_ref();
        }
        if let LogicalPlan::SubqueryAlias(a) = input {
            input = a.input.as_ref();
        }
        if !matches!(input, LogicalPlan::TableScan(_)) {
            return Err(ExprError::compile(
                key,
                format!(
                    "expected `SELECT ... FROM {TABLE} [WHERE ...]` over the table `{TABLE}` only (aggregates, joins, ORDER BY, LIMIT and DISTINCT are not per-record), got {}",
                    plan.display_indent()
                ),
            ));
        }
        let out_schema = projection.schema.clone();
        let mut exprs = Vec::with_capacity(projection.expr.len());
        for (i, e) in projection.expr.iter().enumerate() {
            let field = out_schema.field(i);
            let named_by_user = matches!(e, Expr::Alias(_) | Expr::Column(_));
            exprs.push(NamedExpr {
                name: field.name().clone(),
                named_by_user,
                expr: self.physical(key, e.clone(), projection.input.schema())?,
                data_type: field.data_type().clone(),
                nullable: field.is_nullable(),
            });
        }
        let schema = Arc::new(Schema::new(
            exprs
                .iter()
                .map(|e| Field::new(&e.name, e.data_type.clone(), e.nullable))
                .collect::<Vec<_>>(),
        ));
        Ok(CompiledSelect {
            projection: exprs,
            filter,
            schema,
        })
    }

    /// Compiles a comma-separated list of expressions (`a, date_format(t, '%Y') AS y`).
    pub fn compile_list(
        &self,
        key: &str,
        list: &str,
        schema: &SchemaRef,
    ) -> Result<Vec<NamedExpr>, ExprError> {
        // A newline, so that a `--` comment ending the list does not swallow the FROM.
        let select = self.compile_select(key, &format!("SELECT {list}\nFROM {TABLE}"), schema)?;
        Ok(select.projection)
    }

    /// Checks a statement before its schema is known (configs whose schema is inferred from the
    /// data): the syntax, and that every function it calls exists.
    ///
    /// Sound, not complete: only what cannot depend on column types is refused. A call
    /// `f(...)` (with parentheses) fails DataFusion's planning for every schema when `f`,
    /// normalised as DataFusion does (unquoted names lower-cased), is none of the session's
    /// scalar, higher-order, aggregate or window functions nor one the planner handles itself
    /// (`map`, `make_map`, `unnest`, `unnest_outer`): the planner looks the name up in exactly
    /// these registries before it looks at any argument. Unknown columns, argument types and
    /// aggregates are left to [`SqlCompiler::compile_select`] on the first batch's schema.
    pub fn check_without_schema(&self, key: &str, sql: &str) -> Result<(), ExprError> {
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state
            .sql_to_statement(sql, &dialect)
            .map_err(|e| ExprError::compile(key, e))?;
        let datafusion::sql::parser::Statement::Statement(statement) = statement else {
            return Ok(());
        };
        let unknown = visit_expressions(statement.as_ref(), |e| match e {
            SqlExpr::Function(f) if !matches!(f.args, FunctionArguments::None) => {
                let name = function_name(&f.name);
                if known_function(&state, &name) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(name)
                }
            }
            _ => ControlFlow::Continue(()),
        });
        match unknown {
            ControlFlow::Break(name) => Err(ExprError::compile(
                key,
                format!("Invalid function '{name}': DataFusion has no such function"),
            )),
            ControlFlow::Continue(()) => Ok(()),
        }
    }

    fn plan(&self, key: &str, sql: &str, schema: &SchemaRef) -> Result<LogicalPlan, ExprError> {
        // A context of its own: the table `records` has this schema only for this statement.
        let ctx = new_context();
        ctx.register_table(TABLE, Arc::new(EmptyTable::new(schema.clone())))
            .map_err(|e| ExprError::compile(key, e))?;
        let state = ctx.state();
        futures::executor::block_on(state.create_logical_plan(sql))
            .map_err(|e| ExprError::compile(key, e))
    }

    fn physical(
        &self,
        key: &str,
        expr: Expr,
        schema: &DFSchema,
    ) -> Result<Arc<dyn PhysicalExpr>, ExprError> {
        let state = self.ctx.state();
        let context = SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .with_config_options(Arc::clone(state.config_options()))
            .build();
        let simplifier = ExprSimplifier::new(context);
        // Coerce types, then simplify (which also turns `arrow_cast` into a plain cast).
        let expr = simplifier
            .coerce(expr, schema)
            .and_then(|e| simplifier.simplify(e))
            .map_err(|e| ExprError::compile(key, e))?;
        state
            .create_physical_expr(expr, schema)
            .map_err(|e| ExprError::compile(key, e))
    }
}

/// A function's name as DataFusion's planner looks it up: an unquoted name lower-cased, a
/// quoted one as written, a compound one (`a.b`) as its text.
fn function_name(name: &ObjectName) -> String {
    match name.0.as_slice() {
        [part] => match part.as_ident() {
            Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
            Some(ident) => ident.value.to_ascii_lowercase(),
            None => name.to_string(),
        },
        _ => name.to_string(),
    }
}

/// Whether DataFusion's planner resolves a call of `name` (see
/// [`SqlCompiler::check_without_schema`]).
fn known_function(state: &SessionState, name: &str) -> bool {
    const PLANNED: [&str; 4] = ["map", "make_map", "unnest", "unnest_outer"];
    PLANNED.contains(&name)
        || state.scalar_functions().contains_key(name)
        || state.higher_order_functions().contains_key(name)
        || state.aggregate_functions().contains_key(name)
        || state.window_functions().contains_key(name)
}

/// Result of [`evaluate_tolerant`].
#[derive(Debug)]
pub struct Evaluated {
    /// One array per expression, over the kept rows.
    pub arrays: Vec<ArrayRef>,
    /// Rows (indexes into the input batch, ascending) where an expression failed, with the cause.
    pub failed: Vec<(usize, String)>,
    /// The input batch restricted to the kept rows (the input itself when nothing failed).
    pub batch: RecordBatch,
}

/// Evaluates `exprs` over `batch`. When a batch-wide evaluation fails (one unparsable timestamp
/// fails a whole `to_timestamp` call), each row is evaluated alone to find the failing ones,
/// which are reported in [`Evaluated::failed`]; the others are evaluated again together.
pub fn evaluate_tolerant(
    exprs: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
) -> Result<Evaluated, String> {
    match evaluate_all(exprs, batch) {
        Ok(arrays) => Ok(Evaluated {
            arrays,
            failed: Vec::new(),
            batch: batch.clone(),
        }),
        Err(first) => {
            let mut failed = Vec::new();
            let mut kept = Vec::new();
            for row in 0..batch.num_rows() {
                match evaluate_all(exprs, &batch.slice(row, 1)) {
                    Ok(_) => kept.push(row as u32),
                    Err(e) => failed.push((row, e)),
                }
            }
            if failed.is_empty() {
                // Fails together but never alone: not a per-record problem.
                return Err(first);
            }
            let kept_batch = arrow::compute::take_record_batch(batch, &UInt32Array::from(kept))
                .map_err(|e| e.to_string())?;
            let arrays = evaluate_all(exprs, &kept_batch)?;
            Ok(Evaluated {
                arrays,
                failed,
                batch: kept_batch,
            })
        }
    }
}

fn evaluate_all(
    exprs: &[Arc<dyn PhysicalExpr>],
    batch: &RecordBatch,
) -> Result<Vec<ArrayRef>, String> {
    exprs
        .iter()
        .map(|e| {
            e.evaluate(batch)
                .and_then(|v| v.into_array(batch.num_rows()))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// `wallclock()`: the current time as `Timestamp(ms, UTC)`, read at every evaluation (unlike
/// `now()`, which DataFusion fixes when a query is planned). The `Wallclock` timestamp extractor
/// compiles to it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Wallclock {
    signature: Signature,
}

impl Default for Wallclock {
    fn default() -> Self {
        Wallclock {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for Wallclock {
    fn name(&self) -> &str {
        "wallclock"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Millisecond,
            Some("UTC".into()),
        ))
    }

    fn invoke_with_args(
        &self,
        _args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
            Some(crate::clock::wall_ms()),
            Some("UTC".into()),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("userId", DataType::Int64, true),
            Field::new("t", DataType::Utf8, true),
        ]))
    }

    fn batch() -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
                Arc::new(StringArray::from(vec![
                    Some("2024-01-01T00:00:00Z"),
                    Some("garbage"),
                    Some("2024-01-02T00:00:00Z"),
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn identifiers_keep_their_case_and_filters_compile() {
        let c = SqlCompiler::new();
        let s = c
            .compile_select(
                "transform.sql",
                "SELECT userId * 2 AS double_id FROM records WHERE userId > 1",
                &schema(),
            )
            .unwrap();
        assert_eq!(s.projection[0].name, "double_id");
        assert!(s.filter.is_some());
    }

    #[test]
    fn unknown_columns_and_aggregates_are_compile_errors_naming_the_key() {
        let c = SqlCompiler::new();
        let e = c
            .compile_list("partition.by", "nope", &schema())
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("config key 'partition.by':"), "{msg}");
        assert!(msg.contains("nope"), "{msg}");
        let e = c
            .compile_select("transform.sql", "SELECT count(*) FROM records", &schema())
            .unwrap_err();
        assert!(e.to_string().contains("not per-record"), "{e}");
        let e = c
            .compile_select("transform.sql", "SELEC x", &schema())
            .unwrap_err();
        assert!(e.to_string().contains("transform.sql"), "{e}");
        assert!(c.check_without_schema("transform.sql", "SELEC x").is_err());
    }

    #[test]
    fn without_a_schema_unknown_functions_are_refused_and_known_ones_wait_for_types() {
        let c = SqlCompiler::new();
        for sql in [
            "SELECT no_such_function(ts)\nFROM records",
            "SELECT NO_SUCH_FUNCTION(ts) AS x\nFROM records",
            "SELECT a FROM records WHERE upper(nope_fn(a)) = 'X'",
            "SELECT \"Upper\"(a) FROM records",
        ] {
            let e = c.check_without_schema("partition.by", sql).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("config key 'partition.by':"), "{msg}");
            assert!(msg.contains("Invalid function"), "{sql}: {msg}");
        }
        for sql in [
            "SELECT date_format(ts, '%Y') AS y, UPPER(user), wallclock()\nFROM records",
            "SELECT count(*), row_number() OVER (), current_date, \"upper\"(a) FROM records",
            "SELECT unnest(a), make_map('k', a), nope_column FROM records",
        ] {
            c.check_without_schema("transform.sql", sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }

    #[test]
    fn one_failing_row_is_reported_alone() {
        let c = SqlCompiler::new();
        let exprs = c
            .compile_list("partition.by", "to_timestamp(t) AS ts", &schema())
            .unwrap();
        let e: Vec<_> = exprs.iter().map(|n| n.expr.clone()).collect();
        let out = evaluate_tolerant(&e, &batch()).unwrap();
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].0, 1);
        assert!(out.failed[0].1.contains("garbage"), "{}", out.failed[0].1);
        assert_eq!(out.batch.num_rows(), 2);
        assert_eq!(out.arrays[0].len(), 2);
    }

    #[test]
    fn wallclock_is_read_at_evaluation() {
        let c = SqlCompiler::new();
        let exprs = c
            .compile_list("partition.by", "wallclock() AS w", &schema())
            .unwrap();
        let before = crate::clock::wall_ms();
        let a = exprs[0]
            .expr
            .evaluate(&batch())
            .unwrap()
            .into_array(3)
            .unwrap();
        let a = a
            .as_any()
            .downcast_ref::<arrow::array::TimestampMillisecondArray>()
            .unwrap();
        assert!(a.value(0) >= before);
    }
}
