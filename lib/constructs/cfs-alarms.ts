import { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface CfsAlarmsProps {
  /** Where every alarm goes. */
  topic: sns.ITopic;
  stateMachine: sfn.IStateMachine;
  /** The state machine's log group (all events, without data). */
  stateMachineLogs: logs.ILogGroup;
  api: apigw.RestApi;
  /** Dead-letter queues: any message in one is an event or a schedule tick that was never handled. */
  deadLetterQueues: Record<string, sqs.IQueue>;
  /** Functions invoked asynchronously (by rules and schedules), by name: any error of one is an event not (yet) handled. */
  asyncFunctions: Record<string, lambda.IFunction>;
  /** Their on-failure destination: any message in it is an event the function failed every time. */
  asyncFailures: sqs.IQueue;
  /** 5xx answers above this share of the API's requests (over 5 minutes) alarm. */
  api5xxRatio: number;
  /** The runner's budget and the image wait: an execution longer than both (plus an hour for the other steps) overran. */
  runnerTimeoutSeconds: number;
  imageWaitTimeoutSeconds: number;
}

/** The namespace of the product's own metrics (from metric filters). */
export const METRIC_NAMESPACE = 'CFS';

/**
 * What needs a person: session executions that failed or timed out, the API answering 5xx,
 * runner tasks that overran their time budget, dead-letter queues that hold something, errors
 * of the asynchronously invoked functions and their on-failure queue holding something.
 * Every alarm goes to one SNS topic. Missing data (no sessions, no requests) is not breaching.
 */
export class CfsAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: CfsAlarmsProps) {
    super(scope, id);
    const fiveMinutes = Duration.minutes(5);
    const add = (alarmId: string, alarm: Omit<cloudwatch.AlarmProps, 'treatMissingData'>) => {
      const made = new cloudwatch.Alarm(this, alarmId, { ...alarm, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING });
      made.addAlarmAction(new actions.SnsAction(props.topic));
      this.alarms.push(made);
    };

    // Aborted executions are deleted sessions (a user's choice); failed and timed out ones are not.
    add('ExecutionsFailed', {
      alarmDescription: 'Session executions failed or timed out (the session records the reason; the execution-ended Lambda cleaned up)',
      metric: new cloudwatch.MathExpression({
        expression: 'failed + timedOut',
        usingMetrics: { failed: props.stateMachine.metricFailed({ period: fiveMinutes }), timedOut: props.stateMachine.metricTimedOut({ period: fiveMinutes }) },
        period: fiveMinutes,
        label: 'failed or timed out executions',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });

    // The average of 5XXError is the share of requests answered 5xx.
    add('Api5xxRate', {
      alarmDescription: `More than ${props.api5xxRatio * 100}% of API requests answered 5xx over 5 minutes`,
      metric: props.api.metricServerError({ period: fiveMinutes, statistic: cloudwatch.Stats.AVERAGE }),
      threshold: props.api5xxRatio,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });

    // RunAnsible reaching its TimeoutSeconds: the runner ignored its own budget (hung, or the
    // host lost). WaitForImages times out by design, so only the ECS task's timeouts count.
    const runnerTimedOut = new logs.MetricFilter(this, 'RunnerTimedOutFilter', {
      logGroup: props.stateMachineLogs,
      filterPattern: logs.FilterPattern.literal('{ ($.type = "TaskTimedOut") && ($.details.resourceType = "ecs") }'),
      metricNamespace: METRIC_NAMESPACE,
      metricName: 'RunnerTaskTimedOut',
      metricValue: '1',
      defaultValue: 0,
    });
    add('RunnerTaskTimedOut', {
      alarmDescription: 'A runner task ran until the RunAnsible state timed out',
      metric: runnerTimedOut.metric({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });
    const budgetMs = (props.imageWaitTimeoutSeconds + props.runnerTimeoutSeconds + 3600) * 1000;
    add('ExecutionOverBudget', {
      alarmDescription: `A session execution took longer than the image wait, the runner's budget and an hour for the other steps (${budgetMs / 1000} s)`,
      metric: props.stateMachine.metricTime({ period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: budgetMs,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    });

    for (const [name, queue] of Object.entries(props.deadLetterQueues)) {
      add(`${name}DeadLetters`, {
        alarmDescription: `${name}: events or schedule ticks that were never handled wait in the dead-letter queue`,
        metric: queue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    // Nobody waits on these functions' answers: an error is seen here or not at all (Lambda retries it, then the on-failure queue keeps it).
    for (const [name, fn] of Object.entries(props.asyncFunctions)) {
      add(`${name}Errors`, {
        alarmDescription: `${name} Lambda: an invocation failed (it threw or timed out); Lambda retries it, and one that fails every time waits in the async failure queue`,
        metric: fn.metricErrors({ period: fiveMinutes, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }
    add('AsyncFailures', {
      alarmDescription: `Events that ${Object.keys(props.asyncFunctions).join(' or ')} failed on every attempt wait in the async failure queue, each with its error`,
      metric: props.asyncFailures.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });
  }
}
