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
        let (eval_schema, hidden, output) = match &transform {
            None => {
                let output: Vec<usize> = input_schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| written(config, f.name(), &metadata_names))
                    .map(|(i, _)| i)
                    .collect();
                (input_schema.clone(), Vec::new(), output)
            }
            Some(t) => {
                let out = t.output_schema();
                let present: HashSet<&String> = out.fields().iter().map(|f| f.name()).collect();
                let hidden: Vec<usize> = input_schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| {
                        metadata_names.contains(f.name()) && !present.contains(f.name())
                    })
                    .map(|(i, _)| i)
                    .collect();
                let mut fields: Vec<_> = out.fields().iter().cloned().collect();
                fields.extend(hidden.iter().map(|&i| input_schema.fields()[i].clone()));
                // A bare metadata column (`SELECT *`, `_offset`) is written only with
                // include.kafka.metadata; an aliased one (`_offset AS off`) always.
                let output: Vec<usize> = (0..out.fields().len())
                    .filter(|&i| written(config, out.field(i).name(), &metadata_names))
                    .collect();
                (Arc::new(Schema::new(fields)), hidden, output)
            }
        };
        let rule = CompiledRule::compile(compiler, &config.partition_rule, &eval_schema)?;
        let requires_timestamp = config.partition_rule.requires_timestamp();
        let timestamp = if need_time || requires_timestamp {
            let key = "timestamp.extractor";
            let exprs = compiler.compile_list(
                key,
                &format!(
                    "arrow_cast({}, 'Timestamp(Millisecond, Some(\"UTC\"))') AS record_time",
                    config.timestamp.sql
                ),
                &eval_schema,
            )?;
            exprs.into_iter().next().map(|e| e.expr)
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
        let eval_err = |key: &str, message: String| ExprError::Evaluate {
            key: key.into(),
            message,
        };
        let mut failed = Vec::new();
        // 1. transform.sql
        let (mut batch, mut rows) = match &self.transform {
            None => (input.clone(), (0..input.num_rows()).collect::<Vec<_>>()),
            Some(t) => {
                let applied = t.apply(input)?;
                failed.extend(applied.failed);
                let mut columns = applied.batch.columns().to_vec();
                if !self.hidden.is_empty() {
                    let idx = UInt32Array::from_iter_values(applied.rows.iter().map(|&r| r as u32));
                    for &h in &self.hidden {
                        columns.push(
                            arrow::compute::take(input.column(h), &idx, None)
                                .map_err(|e| eval_err("transform.sql", e.to_string()))?,
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
                    .map_err(|e| eval_err("transform.sql", e.to_string()))?;
                (batch, applied.rows)
            }
        };
        // 2. partition levels and record time, evaluated together.
        let mut exprs = self.rule.exprs();
        let levels = exprs.len();
        if let Some(t) = &self.timestamp {
            exprs.push(t.clone());
        }
        let out = evaluate_tolerant(&exprs, &batch).map_err(|m| eval_err("partition rule", m))?;
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
        let mut arrays = out.arrays;
        let mut times = None;
        if self.timestamp.is_some() {
            let t = arrays.pop().unwrap_or_else(|| {
                Arc::new(TimestampMillisecondArray::from(Vec::<i64>::new())) as ArrayRef
            });
            let t = t
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .ok_or_else(|| {
                    eval_err(
                        "timestamp.extractor",
                        format!("expected a timestamp, got {}", t.data_type()),
                    )
                })?
                .clone();
            if self.requires_timestamp && t.null_count() > 0 {
                let missing: Vec<(usize, String)> = (0..t.len())
                    .filter(|&i| t.is_null(i))
                    .map(|i| {
                        (
                            i,
                            format!(
                                "no record time: {} is missing or null (timestamp.extractor)",
                                self.timestamp_description
                            ),
                        )
                    })
                    .collect();
                let kept: Vec<u32> = survivors(t.len(), &missing)
                    .into_iter()
                    .map(|i| i as u32)
                    .collect();
                failed.extend(missing.iter().map(|(i, m)| (rows[*i], m.clone())));
                rows = kept.iter().map(|&i| rows[i as usize]).collect();
                let idx = UInt32Array::from(kept);
                let take = |a: &ArrayRef| arrow::compute::take(a, &idx, None);
                arrays = arrays
                    .iter()
                    .map(take)
                    .collect::<Result<_, _>>()
                    .map_err(|e| eval_err("partition rule", e.to_string()))?;
                batch = arrow::compute::take_record_batch(&batch, &idx)
                    .map_err(|e| eval_err("partition rule", e.to_string()))?;
                let t2 = arrow::compute::take(&t, &idx, None)
                    .map_err(|e| eval_err("timestamp.extractor", e.to_string()))?;
                times = Some(millis(&t2));
            } else {
                times = Some(millis(&(Arc::new(t) as ArrayRef)));
            }
        }
        debug_assert_eq!(arrays.len(), levels);
        let groups = self.rule.group(&arrays)?;
        failed.sort_by_key(|(i, _)| *i);
        let batch = RecordBatch::try_new(
            self.output_schema.clone(),
            self.output
                .iter()
                .map(|&i| batch.column(i).clone())
                .collect(),
        )
        .map_err(|e| eval_err("transform.sql", e.to_string()))?;
        Ok(Processed {
            batch,
            rows,
            groups,
            times,
            failed,
        })
    }
}

/// Whether a column named `name` goes to the files: value columns always; metadata columns with
/// `include.kafka.metadata`, `_key` with `store.kafka.keys`, `_headers` with `store.kafka.headers`.
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
/// columns and type errors; otherwise (inferred JSON) checks the syntax, and the rest is checked
/// when the first batch has a schema.
pub fn check_config(config: &Config) -> Result<(), ExprError> {
    let compiler = SqlCompiler::new();
    // Registry-framed Avro has no schema before the first record.
    let registry_avro = matches!(
        config.formats.avro,
        Some(crate::config::formats::AvroSource::Registry { .. })
    );
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
                compiler.check_syntax("transform.sql", sql)?;
            }
            if let crate::partition::RuleSpec::Sql { key, list } = &config.partition_rule {
                compiler.check_syntax(key, &format!("SELECT {list}\nFROM records"))?;
            }
            Ok(())
        }
    }
}
