"""The counting endpoint: model from the artifact (with this checkout's handler code),
GPU endpoint, auto scaling, alarms."""

from __future__ import annotations

from aws_cdk import AssetHashType, Aws, CfnMapping, Duration, Stack
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from contract.keys import PHOTO_PREFIX
from model.layout import MODEL_SERVER_ENVIRONMENT

from .config import BinCheckConfig
from .log_groups import log_group
from .model_artifact import build_serving_artifact

VARIANT = "AllTraffic"


def pytorch_images(
    config: BinCheckConfig, *, scope: str = "inference", instance_type: str | None = None
) -> dict[str, dict[str, str]]:
    """The AWS PyTorch image (``inference`` or ``training``) for every region the SageMaker
    SDK knows, resolved now and pinned in the template: one template deploys to any of them."""
    from sagemaker.core import image_uris

    images = {}
    versions = image_uris.config_for_framework("pytorch")[scope]["versions"]
    for region in versions[config.pytorch_version]["registries"]:
        uri = image_uris.retrieve(
            "pytorch",
            region=region,
            version=config.pytorch_version,
            py_version=config.python_version,
            instance_type=instance_type or config.instance_type,
            image_scope=scope,
        )
        images[region] = {"uri": uri, "registry": uri.split(".", 1)[0]}
    return images


class CountingEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: BinCheckConfig,
        photos: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        self.model_artifact = self._model_artifact(config)
        self.model_data_url = self.model_artifact.s3_object_url
        images = CfnMapping(self, "PyTorchInferenceImage", mapping=pytorch_images(config))
        # SageMaker's own name for the endpoint's logs: declared here so that it expires,
        # created before the endpoint so that SageMaker finds it rather than making one.
        self.logs = log_group(
            self, "Logs", config=config, name=f"/aws/sagemaker/Endpoints/{config.endpoint_name}"
        )
        self.network_isolation = config.endpoint_network_isolation
        self.role = self._role(photos, images.find_in_map(Aws.REGION, "registry"))
        # What a model of this endpoint is, for the training pipeline's models too.
        self.image_uri = images.find_in_map(Aws.REGION, "uri")
        self.container_environment = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "BINCHECK_FAST_PATH": "1",
            **MODEL_SERVER_ENVIRONMENT,  # TorchServe's request limit above the contract's
        }
        model = self._model()
        self.volume_key = kms.Key(
            self, "VolumeKey", enable_key_rotation=True, description="Endpoint volumes"
        )
        self.data_capture_uri = f"s3://{photos.bucket_name}/data-capture"
        endpoint_config = self._endpoint_config(config, photos, model)
        self.endpoint = self._endpoint(config, endpoint_config)
        self.endpoint_name = config.endpoint_name
        self.endpoint_arn = Stack.of(self).format_arn(
            service="sagemaker", resource="endpoint", resource_name=config.endpoint_name
        )
        self._autoscaling(config)
        self.latency = self._metric("ModelLatency", "Average")  # microseconds
        self.invocations = self._metric("Invocations", "Sum")
        self.server_errors = self._metric("Invocation5XXErrors", "Sum")
        self.latency_alarm = self._latency_alarm(config)
        self.error_alarm = self._error_alarm()

    def _model_artifact(self, config: BinCheckConfig) -> assets.Asset:
        if not config.model_artifact_path.is_file():
            raise ValueError(
                f"no model artifact at {config.model_artifact_path}: set "
                '-c bincheck=\'{"model_artifact": "path/to/model.tar.gz"}\''
            )
        built, content = build_serving_artifact(config.model_artifact_path)
        return assets.Asset(
            self,
            "ModelArtifact",
            path=str(built),
            asset_hash=content,
            asset_hash_type=AssetHashType.CUSTOM,
        )

    def _role(self, photos: s3.IBucket, registry: str) -> iam.Role:
        role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Counting endpoint: read the model and the photos, write logs and metrics",
        )
        # The model artifact (one object), and photos named in s3_uri requests: the model
        # reads the photo itself, and only photos. An isolated model has no network to
        # read anything with (the checker sends the bytes).
        readable = [self.model_artifact.bucket.arn_for_objects(self.model_artifact.s3_object_key)]
        if not self.network_isolation:
            readable.append(photos.arn_for_objects(f"{PHOTO_PREFIX}*"))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=readable))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[
                    f"arn:{Aws.PARTITION}:ecr:{Aws.REGION}:{registry}:repository/pytorch-inference"
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/Endpoints"}},
            )
        )
        # Its own log group only. CreateLogGroup as SageMaker's execution role documentation
        # lists it: the group exists, so the call creates nothing.
        self.logs.grant(role, "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
        return role

    def _model(self) -> sagemaker.CfnModel:
        return sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=self.role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=self.image_uri,
                model_data_url=self.model_data_url,
                environment=self.container_environment,
            ),
            enable_network_isolation=self.network_isolation,
        )

    def _data_capture(
        self, config: BinCheckConfig, photos: s3.IBucket
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        if not config.data_capture_percent:
            return None
        capture = sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=config.data_capture_percent,
            destination_s3_uri=self.data_capture_uri,
            kms_key_id=self.volume_key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[photos.arn_for_objects("data-capture/*")]
            )
        )
        self.volume_key.grant_encrypt(self.role)
        return capture

    def _endpoint_config(
        self, config: BinCheckConfig, photos: s3.IBucket, model: sagemaker.CfnModel
    ) -> sagemaker.CfnEndpointConfig:
        return sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=self.volume_key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT,
                    model_name=model.attr_model_name,
                    instance_type=config.instance_type,
                    initial_instance_count=config.min_instances,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=self._data_capture(config, photos),
        )

    def _endpoint(
        self, config: BinCheckConfig, endpoint_config: sagemaker.CfnEndpointConfig
    ) -> sagemaker.CfnEndpoint:
        # An explicit lower-case name: SageMaker ARNs are lower case, so a generated
        # mixed-case name would make the InvokeEndpoint grant below match nothing.
        endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=config.endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )
        # The role's policy must exist before SageMaker fetches the model for the endpoint,
        # and the log group before SageMaker would create it.
        endpoint.node.add_dependency(self.role, self.logs)
        return endpoint

    def _autoscaling(self, config: BinCheckConfig) -> None:
        scaling = autoscaling.ScalableTarget(
            self,
            "Scaling",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=config.min_instances,
            max_capacity=config.max_instances,
        )
        scaling.node.add_dependency(self.endpoint)
        scaling.scale_to_track_metric(
            "InvocationsPerInstance",
            target_value=config.invocations_per_instance,
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=Duration.minutes(10),
            scale_out_cooldown=Duration.minutes(1),
        )

    def _metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": VARIANT},
            statistic=statistic,
            period=Duration.minutes(1),
        )

    def _latency_alarm(self, config: BinCheckConfig) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            "LatencyAlarm",
            alarm_description=f"Model latency above {config.latency_alarm_ms} ms",
            metric=self.latency,
            threshold=config.latency_alarm_ms * 1000,
            evaluation_periods=5,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _error_alarm(self) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            "ServerErrorsAlarm",
            alarm_description="The model answered with 5xx errors",
            metric=self.server_errors,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:InvokeEndpoint"], resource_arns=[self.endpoint_arn]
        )
