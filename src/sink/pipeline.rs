//! The SQL stages between decoding and the open files, compiled once per value schema:
//!
//! ```text
//!  values + metadata columns ──► transform.sql (optional: filter, project) ──► + hidden metadata
//!        ──► partition rule levels ─┐
//!        ──► timestamp extractor  ──┴─► groups of rows, record time per row
//!        ──► output columns (metadata only with include.kafka.metadata or when aliased)
//! ```
//!
//! Every stage may reject single rows (an expression failing on one record, a time-based rule on
//! a record without a timestamp); [`Processed::failed`] lists them by input row so that the
//! writer applies `errors.tolerance`. Filtered rows are simply absent: they are consumed.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

use crate::config::Config;
use crate::decode::metadata;
use crate::expr::transform::{survivors, Transform};
use crate::expr::{evaluate_tolerant, ExprError, SqlCompiler};
use crate::partition::{CompiledRule, Group};

/// Stages compiled for one input schema (values + metadata columns).
pub struct Pipeline {
    input_schema: SchemaRef,
    transform: Option<Transform>,
    /// Input columns appended after the transform so the rule can use them (metadata the
    /// transform did not keep).
    hidden: Vec<usize>,
    rule: CompiledRule,
    timestamp: Option<Arc<dyn PhysicalExpr>>,
    timestamp_description: String,
    requires_timestamp: bool,
    /// Columns of the evaluation batch that are written.
    output: Vec<usize>,
    output_schema: SchemaRef,
}

/// One processed batch.
#[derive(Debug)]
pub struct Processed {
    /// Output columns of the rows that go to files.
    pub batch: RecordBatch,
    /// Input row of each output row (ascending).
    pub rows: Vec<usize>,
    /// Groups of output rows by directory.
    pub groups: Vec<Group>,
    /// Record time (epoch ms, -1 when unknown) of each output row, when the pipeline computes it.
    pub times: Option<Vec<i64>>,
    /// Input rows rejected by a stage, with the cause.
    pub failed: Vec<(usize, String)>,
}

impl Pipeline {
    /// Compiles the configured stages for batches of `input_schema` (values + metadata).
    /// `need_time`: compute record times (for `rotate.interval.ms`).
    pub fn compile(
        compiler: &SqlCompiler,
        config: &Config,
        input_schema: &SchemaRef,
        need_time: bool,
    ) -> Result<Self, ExprError> {
        let metadata_names: HashSet<String> = metadata::fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let transform = config
            .transform_sql
            .as_deref()
            .map(|sql| Transform::compile(compiler, sql, input_schema))
            .transpose()?;
        let (eval_schema, hidden, output) =
            evaluated_columns(config, input_schema, transform.as_ref(), &metadata_names);
        let rule = CompiledRule::compile(compiler, &config.partition_rule, &eval_schema)?;
        let requires_timestamp = config.partition_rule.requires_timestamp();
        let timestamp = if need_time || requires_timestamp {
            Some(record_time_expr(compiler, config, &eval_schema)?)
        } else {
            None
        };
        let output_schema =
            Arc::new(
                eval_schema
                    .project(&output)
                    .map_err(|e| ExprError::Compile {
                        key: "transform.sql".into(),
                        message: e.to_string(),
                    })?,
            );
        Ok(Pipeline {
            input_schema: input_schema.clone(),
            transform,
            hidden,
            rule,
            timestamp,
            timestamp_description: config.timestamp.description.clone(),
            requires_timestamp,
            output,
            output_schema,
        })
    }

    pub fn input_schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    pub fn output_schema(&self) -> &SchemaRef {
        &self.output_schema
    }

    /// The partition rule's column names, in directory order.
    pub fn partition_columns(&self) -> Vec<Option<String>> {
        self.rule
            .names()
            .into_iter()
            .map(|n| n.map(str::to_string))
            .collect()
    }

    /// Runs the stages over `input` (which has [`Pipeline::input_schema`]).
    pub fn process(&self, input: &RecordBatch) -> Result<Processed, ExprError> {
        let mut failed = Vec::new();
        // 1. transform.sql
        let (mut batch, mut rows) = self.transform(input, &mut failed)?;
        // 2. partition levels and record time, evaluated together.
        let mut exprs = self.rule.exprs();
        let levels = exprs.len();
        if let Some(t) = &self.timestamp {
            exprs.push(t.clone());
        }
        let out =
            evaluate_tolerant(&exprs, &batch).map_err(|m| evaluate_error("partition rule", m))?;
        if !out.failed.is_empty() {
            let kept = survivors(rows.len(), &out.failed);
            failed.extend(
                out.failed
                    .iter()
                    .map(|(i, m)| (rows[*i], format!("partition rule failed: {m}"))),
            );
            rows = kept.into_iter().map(|i| rows[i]).collect();
            batch = out.batch;
        }
        let mut timed = Timed {
            batch,
            rows,
            arrays: out.arrays,
        };
        // 3. rows without a record time, where one is required
        let times = match self.timestamp.is_some() {
            true => Some(self.record_times(&mut timed, &mut failed)?),
            false => None,
        };
        debug_assert_eq!(timed.arrays.len(), levels);
        let groups = self.rule.group(&timed.arrays)?;
        failed.sort_by_key(|(i, _)| *i);
        let columns = self.output.iter().map(|&i| timed.batch.column(i).clone());
        let batch = RecordBatch::try_new(self.output_schema.clone(), columns.collect())
            .map_err(|e| evaluate_error("transform.sql", e.to_string()))?;
        Ok(Processed {
            batch,
            rows: timed.rows,
            groups,
            times,
            failed,
        })
    }

    /// The transform's output (plus the hidden input columns the rule needs) and, per output
    /// row, its input row; rows it fails on go to `failed`.
    fn transform(
        &self,
        input: &RecordBatch,
        failed: &mut Vec<(usize, String)>,
    ) -> Result<(RecordBatch, Vec<usize>), ExprError> {
        let Some(t) = &self.transform else {
            return Ok((input.clone(), (0..input.num_rows()).collect()));
        };
        let applied = t.apply(input)?;
        failed.extend(applied.failed);
        let mut columns = applied.batch.columns().to_vec();
        if !self.hidden.is_empty() {
            let idx = UInt32Array::from_iter_values(applied.rows.iter().map(|&r| r as u32));
            for &h in &self.hidden {
                columns.push(
                    arrow::compute::take(input.column(h), &idx, None)
                        .map_err(|e| evaluate_error("transform.sql", e.to_string()))?,
                );
            }
        }
        let mut fields: Vec<_> = applied.batch.schema().fields().iter().cloned().collect();
        fields.extend(
            self.hidden
                .iter()
                .map(|&i| self.input_schema.fields()[i].clone()),
        );
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| evaluate_error("transform.sql", e.to_string()))?;
        Ok((batch, applied.rows))
    }

    /// Takes the record-time array (the last of `timed.arrays`) and returns it as epoch ms.
    /// When a time is required, rows without one go to `failed` and leave `timed`.
    fn record_times(
        &self,
        timed: &mut Timed,
        failed: &mut Vec<(usize, String)>,
    ) -> Result<Vec<i64>, ExprError> {
        let t = timed.arrays.pop().unwrap_or_else(|| {
            Arc::new(TimestampMillisecondArray::from(Vec::<i64>::new())) as ArrayRef
        });
        let t = t
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .ok_or_else(|| {
                evaluate_error(
                    "timestamp.extractor",
                    format!("expected a timestamp, got {}", t.data_type()),
                )
            })?
            .clone();
        if !(self.requires_timestamp && t.null_count() > 0) {
            return Ok(millis(&(Arc::new(t) as ArrayRef)));
        }
        let cause = format!(
            "no record time: {} is missing or null (timestamp.extractor)",
            self.timestamp_description
        );
        let missing: Vec<(usize, String)> = (0..t.len())
            .filter(|&i| t.is_null(i))
            .map(|i| (i, cause.clone()))
            .collect();
        let kept: Vec<u32> = survivors(t.len(), &missing)
            .into_iter()
            .map(|i| i as u32)
            .collect();
        failed.extend(missing.iter().map(|(i, m)| (timed.rows[*i], m.clone())));
        timed.rows = kept.iter().map(|&i| timed.rows[i as usize]).collect();
        let idx = UInt32Array::from(kept);
        let take = |a: &ArrayRef| arrow::compute::take(a, &idx, None);
        let rule_err =
            |e: arrow::error::ArrowError| evaluate_error("partition rule", e.to_string());
        timed.arrays = timed
            .arrays
            .iter()
            .map(take)
            .collect::<Result<_, _>>()
            .map_err(rule_err)?;
        timed.batch = arrow::compute::take_record_batch(&timed.batch, &idx).map_err(rule_err)?;
        let t2 = arrow::compute::take(&t, &idx, None)
            .map_err(|e| evaluate_error("timestamp.extractor", e.to_string()))?;
        Ok(millis(&t2))
    }
}

/// Rows between the stages of [`Pipeline::process`]: the batch, each row's input row, and the
/// evaluated partition levels (then the record time).
struct Timed {
    batch: RecordBatch,
    rows: Vec<usize>,
    arrays: Vec<ArrayRef>,
}

fn evaluate_error(key: &str, message: String) -> ExprError {
    ExprError::Evaluate {
        key: key.into(),
        message,
    }
}

/// Whether a column named `name` goes to the files: value columns always; metadata columns with
/// `include.kafka.metadata`, `_key` with `store.kafka.keys`, `_headers` with `store.kafka.headers`.
/// The schema the partition rule and the timestamp see (the transform's output, or the input,
/// plus metadata columns the transform dropped, hidden), the hidden columns' input indexes, and
/// the indexes of the columns written to files.
fn evaluated_columns(
    config: &Config,
    input_schema: &SchemaRef,
    transform: Option<&Transform>,
    metadata_names: &HashSet<String>,
) -> (SchemaRef, Vec<usize>, Vec<usize>) {
    let Some(t) = transform else {
        let output: Vec<usize> = input_schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| written(config, f.name(), metadata_names))
            .map(|(i, _)| i)
            .collect();
        return (input_schema.clone(), Vec::new(), output);
    };
    let out = t.output_schema();
    let present: HashSet<&String> = out.fields().iter().map(|f| f.name()).collect();
    let hidden: Vec<usize> = input_schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| metadata_names.contains(f.name()) && !present.contains(f.name()))
        .map(|(i, _)| i)
        .collect();
    let mut fields: Vec<_> = out.fields().iter().cloned().collect();
    fields.extend(hidden.iter().map(|&i| input_schema.fields()[i].clone()));
    // A bare metadata column (`SELECT *`, `_offset`) is written only with
    // include.kafka.metadata; an aliased one (`_offset AS off`) always.
    let output: Vec<usize> = (0..out.fields().len())
        .filter(|&i| written(config, out.field(i).name(), metadata_names))
        .collect();
    (Arc::new(Schema::new(fields)), hidden, output)
}

/// `timestamp.extractor` compiled to a UTC millisecond timestamp named `record_time`.
fn record_time_expr(
    compiler: &SqlCompiler,
    config: &Config,
    eval_schema: &SchemaRef,
) -> Result<Arc<dyn PhysicalExpr>, ExprError> {
    let sql = format!(
        "arrow_cast({}, 'Timestamp(Millisecond, Some(\"UTC\"))') AS record_time",
        config.timestamp.sql
    );
    let exprs = compiler.compile_list("timestamp.extractor", &sql, eval_schema)?;
    exprs
        .into_iter()
        .next()
        .map(|e| e.expr)
        .ok_or_else(|| ExprError::Compile {
            key: "timestamp.extractor".into(),
            message: "the timestamp extractor compiled to no expression".into(),
        })
}

fn written(config: &Config, name: &str, metadata_names: &HashSet<String>) -> bool {
    !metadata_names.contains(name)
        || config.include_kafka_metadata
        || (name == "_key" && config.formats.store_keys)
        || (name == "_headers" && config.formats.store_headers)
}

/// Epoch milliseconds of a `Timestamp(ms)` array, -1 for nulls.
fn millis(a: &ArrayRef) -> Vec<i64> {
    match a.as_any().downcast_ref::<TimestampMillisecondArray>() {
        Some(t) => (0..t.len())
            .map(|i| if t.is_valid(i) { t.value(i) } else { -1 })
            .collect(),
        None => vec![-1; a.len()],
    }
}

/// Checks the SQL of a configuration before anything starts: compiles every stage against the
/// value schema when it is known (declared `value.schema`, raw input), which catches unknown
/// columns and type errors; otherwise (inferred JSON, registry Avro) checks the syntax and that
/// every called function exists ([`SqlCompiler::check_without_schema`]), and what depends on
/// column types is checked when the first batch has a schema. Part of [`crate::job::prepare`].
pub fn check_config(config: &Config) -> Result<(), ExprError> {
    let compiler = SqlCompiler::new();
    // Registry-framed Avro and JSON Schema have no schema before the first record.
    let registry_avro = matches!(
        config.formats.avro,
        Some(crate::config::formats::AvroSource::Registry { .. })
    ) || config.formats.protobuf.is_some()
        || config.input_format == crate::config::InputFormat::JsonSchema;
    let values = if registry_avro {
        None
    } else {
        let key = match config.input_format {
            crate::config::InputFormat::Avro => "value.avro.schema",
            crate::config::InputFormat::ConnectJson => "value.connect.schema",
            _ => "value.schema",
        };
        crate::decode::decoder_for(config, "", None, None)
            .map_err(|e| ExprError::Compile {
                key: key.into(),
                message: e.to_string(),
            })?
            .schema()
    };
    match values {
        Some(values) => {
            let input = metadata::with_metadata(&values);
            let need_time = config.rotation.interval.is_some();
            Pipeline::compile(&compiler, config, &input, need_time).map(|_| ())
        }
        None => {
            if let Some(sql) = &config.transform_sql {
                compiler.check_without_schema("transform.sql", sql)?;
            }
            if let crate::partition::RuleSpec::Sql { key, list } = &config.partition_rule {
                compiler.check_without_schema(key, &format!("SELECT {list}\nFROM records"))?;
            }
            Ok(())
        }
    }
}
